"""ivr112's pure core: plan model and validation, the menu state machine, the incident store.

Nothing in this package opens a network socket; it is tested without Asterisk.
"""
