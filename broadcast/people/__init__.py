"""Who is who and where: zones, accounts, targets, the permissions table, the audit log."""
