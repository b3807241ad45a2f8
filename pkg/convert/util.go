package convert

import (
	"encoding/json"
	"time"
)

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// sleep is the pause between polls; tests shorten it.
var sleep = func() <-chan time.Time { return time.After(100 * time.Millisecond) }
