"""MailSlurp routes, one module per area (SDK controller)."""
