"""Time: schedule rules, planning runs ahead, manifests, the scheduler and its leader."""
