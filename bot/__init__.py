"""pavedroad: a ChatOps bot for Slack that serves a platform team's Internal Developer Platform."""
