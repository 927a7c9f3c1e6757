"""``python -m posttrainbench``: the ``ptb`` command."""

from .cli.main import main

if __name__ == "__main__":
    main()
