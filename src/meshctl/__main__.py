from meshctl.cli import main

raise SystemExit(main())
