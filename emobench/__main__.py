"""`python -m emobench`: the emobench command, for launchers that take a module
(`accelerate launch --cpu --num_processes 2 -m emobench ...`)."""

from emobench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
