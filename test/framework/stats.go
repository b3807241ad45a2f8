package framework

import (
	"slices"
	"time"
)

// Median is the middle of ds (the upper one of an even count); ds is not
// changed. It panics on an empty slice, as a benchmark without rounds is
// a bug.
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
