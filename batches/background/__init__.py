"""Background work that is not the dispatcher's: submissions validated after their 202 and
large exports built into files. `manage.py background` runs the loop; `make run` starts it.

Each step does one bounded piece of work (a chunk of ligands, a slice of an export) in its
own transactions and returns whether it did any, so a killed worker loses at most the piece
in hand and the next worker, or the same one restarted, carries on from the database.
"""
