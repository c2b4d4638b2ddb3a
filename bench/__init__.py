"""The benchmark of issue 7: SIPp against the real Asterisk, the IVR as plain dialplan (A)
beside the ivr112 app (B), at several call rates; figures to a table, CSV files and a PNG.

Run it with `make bench` (or `.venv/bin/python -m bench --quick`); it asserts nothing.
"""
