"""Leaderboard rendering: terminal, Markdown, CSV, JSON and HTML from emobench results files."""
