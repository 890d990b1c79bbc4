# nbgrader's settings for the lab's student edition. This folder is nbgrader's course directory: `make assignment`
# and `make autograde` (labkit.assignment) run nbgrader here; everything else in it is generated (git-ignored).
c = get_config()  # noqa: F821 (nbgrader defines it)

c.CourseDirectory.course_id = "labkit"
# Grading runs every notebook whole: a cell may train a base model, and the default of 30 s per cell would stop it.
c.Execute.timeout = 1800
