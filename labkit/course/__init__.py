"""The course's edition of the lab: the student edition, its release and autograding with nbgrader (assignment),
and the checks its graded cells run on a student's answers (checks).

It may import every stage below it; only labkit.run stands above it (the command line offers the course's verbs).
"""
