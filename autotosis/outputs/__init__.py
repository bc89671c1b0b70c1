"""Events to outputs: reel, shorts, report, stills, exports."""
