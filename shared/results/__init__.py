"""What analysis concludes: findings, issue groups, summaries, SARIF, weakness families, verdicts and waived rules."""
