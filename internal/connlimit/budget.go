package connlimit

// Budget returns how many visitor connections the process's descriptor limit leaves room for
// once reserve descriptors are kept back, the limit it read, and whether it could read one.
// A visitor connection may hold a file open beside its socket while it sends it, so the
// budget is half of what the reserve leaves: (limit − reserve) / 2, and at least 1. The
// reserve takes at most a quarter of the limit, so that a process whose limit is about the
// reserve's size (a hard limit of 1,024 is still seen on some hosts) serves visitors instead of
// refusing all but one.
func Budget(reserve int) (n int, limit uint64, ok bool) {
	cur, _, err := DescriptorLimit()
	if err != nil {
		return 0, 0, false
	}
	return budget(cur, reserve), cur, true
}

func budget(limit uint64, reserve int) int {
	const most = 1 << 30 // an unlimited descriptor limit is no cap
	if limit > most {
		limit = most
	}
	if reserve < 0 {
		reserve = 0
	}
	if quarter := int(limit / 4); reserve > quarter {
		reserve = quarter
	}
	if limit <= uint64(reserve)+2 {
		return 1
	}
	return int((limit - uint64(reserve)) / 2)
}
