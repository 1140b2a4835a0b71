"""Outside systems behind small async interfaces. Nothing here knows Slack or the database."""
