"""Campaign broadcasts: channel-neutral creation, approval, scheduling and crash-safe delivery."""
