"""``python -m voxasm``: the voxasm command line."""

from voxasm.cli import main

main()
