"""Figures and deadlines (SPEC §8, §9): the /stats and report texts, the PNG chart, the
reminders and escalations. Imports neither the dialogue nor staff."""
