"""Telling people: the alert hook for what must not wait (a fault NOT REVERTED); Slack arrives with game days."""
