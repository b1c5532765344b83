"""The resident's dialogue (SPEC §4): the steps of the form, registration, feedback, the
addition offer, «Мои обращения». Imports only the shared modules of handlers/."""
