"""``python -m voxvm``: the voxvm command line."""

from voxvm.cli import main

main()
