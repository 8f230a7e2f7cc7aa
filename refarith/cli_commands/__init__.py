"""CLI subcommands: each module defines add_parser(subparsers); refarith.cli discovers them."""
