"""Parses the SQL in $SQL with sqlglot's T-SQL dialect (tests/database.rs).

Fails on a parse error, and on any statement sqlglot could only keep as an opaque
`Command` (its fallback for syntax it does not know). Prints each statement's kind, and the
kinds inside IF blocks, one per line.
"""
import os
import sys

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

sql = os.environ["SQL"]
statements = sqlglot.parse(sql, read="tsql", error_level=ErrorLevel.RAISE)
for statement in statements:
    if statement is None:
        continue
    for node in statement.walk():
        if isinstance(node, exp.Command):
            sys.exit(f"sqlglot kept a statement as an unparsed command: {node.sql('tsql')[:200]}")
        print(type(node).__name__)
