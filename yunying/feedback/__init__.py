"""Feedback tickets (CF-10) from patients, share visitors and staff."""
