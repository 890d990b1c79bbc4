from labkit.run.cli import main

raise SystemExit(main())
