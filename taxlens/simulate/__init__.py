"""Policy simulation: rebalancing rules on a price panel, booked and taxed like the audit."""
