"""plan -> execute -> record: the run engine, its state database and the cron entry point."""
