"""Operations: metrics, structured logging, health, backups and the doctor command."""
