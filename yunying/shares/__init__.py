"""Patients' shares of their exams (CF-6, SH-1, SH-3): links, passwords, visitor sessions, views."""
