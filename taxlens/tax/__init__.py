"""Tax estimates: federal schedules (cited data per year), netting, NIIT, a flat state rate."""
