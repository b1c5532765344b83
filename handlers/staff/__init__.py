"""Staff (SPEC §5, §6): the actions (actions.py), the commands that call them, the views
(lists, /show, /stats) and the notices about undeliverable messages."""
