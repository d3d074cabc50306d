"""`python -m ds2 ...`: the `ds2` command, e.g. for `torchrun -m ds2 train ...`."""

from ds2.cli import main

main()
