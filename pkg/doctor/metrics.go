package doctor

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// yurthub v1.7.0's metric names (namespace node, subsystem yurthub).
const (
	metricInFlight      = "node_yurthub_in_flight_requests_collector" // labels verb, resource, subresources, client
	metricTraffic       = "node_yurthub_proxy_traffic_collector"      // labels client, verb, resource, subresources; bytes
	metricServerHealthy = "node_yurthub_server_healthy_status"        // label server; 1 healthy, 0 not
)

// stuckListDelay is how long a list must stay in flight, without its
// watch, to count as stuck: doctor looks twice, this far apart.
var stuckListDelay = 3 * time.Second

type metricFamilies map[string]*dto.MetricFamily

type sample struct {
	labels map[string]string
	value  float64
}

// samples returns the samples of the gauge or counter name.
func (m metricFamilies) samples(name string) []sample {
	mf := m[name]
	if mf == nil {
		return nil
	}
	var out []sample
	for _, mt := range mf.GetMetric() {
		s := sample{labels: map[string]string{}}
		for _, l := range mt.GetLabel() {
			s.labels[l.GetName()] = l.GetValue()
		}
		switch {
		case mt.Gauge != nil:
			s.value = mt.GetGauge().GetValue()
		case mt.Counter != nil:
			s.value = mt.GetCounter().GetValue()
		case mt.Untyped != nil:
			s.value = mt.GetUntyped().GetValue()
		}
		out = append(out, s)
	}
	return out
}

// scrape reads yurthub's /metrics once.
func (d *doctor) scrape() (metricFamilies, error) {
	p := d.get(d.dp.serveURL+"/metrics", 16<<20)
	if p.err != nil {
		return nil, p.err
	}
	if p.status != http.StatusOK {
		return nil, fmt.Errorf("%s", p)
	}
	var parser expfmt.TextParser
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(p.body))
	if err != nil {
		return nil, fmt.Errorf("parse %s/metrics: %w", d.dp.serveURL, err)
	}
	return mfs, nil
}

// metrics is the first scrape of yurthub's metrics.
func (d *doctor) metrics() (metricFamilies, error) {
	d.do("metrics", func() { d.mfs, d.mfsErr = d.scrape() })
	return d.mfs, d.mfsErr
}

// component is the client's name: yurthub v1.7.0 labels its metrics with
// the whole User-Agent ("kubelet/v1.34.4 (linux/amd64) kubernetes/$format").
func component(userAgent string) string {
	c, _, _ := strings.Cut(userAgent, "/")
	if c = strings.TrimSpace(c); c == "" {
		return "(unknown)"
	}
	return c
}

// requestKey names a kind of request: who asks for what.
type requestKey struct{ client, resource, subresource string }

func (k requestKey) String() string {
	r := k.resource
	if k.subresource != "" {
		r += "/" + k.subresource
	}
	return k.client + " " + r
}

// inFlight sums the requests in flight by key and verb.
func inFlight(mfs metricFamilies) map[requestKey]map[string]float64 {
	out := map[requestKey]map[string]float64{}
	for _, s := range mfs.samples(metricInFlight) {
		if s.value <= 0 {
			continue
		}
		k := requestKey{component(s.labels["client"]), s.labels["resource"], s.labels["subresources"]}
		if out[k] == nil {
			out[k] = map[string]float64{}
		}
		out[k][s.labels["verb"]] += s.value
	}
	return out
}

// listsWithoutWatch returns the keys with a list in flight and no watch.
func listsWithoutWatch(f map[requestKey]map[string]float64) map[requestKey]bool {
	out := map[requestKey]bool{}
	for k, verbs := range f {
		if verbs["list"] > 0 && verbs["watch"] == 0 {
			out[k] = true
		}
	}
	return out
}

func (d *doctor) checkInFlight() Finding {
	const name = CheckInFlight
	mfs, err := d.metrics()
	if err != nil {
		return skip(name, "yurthub's metrics cannot be read", err.Error())
	}
	first := inFlight(mfs)
	var ev []string
	keys := make([]requestKey, 0, len(first))
	for k := range first {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	total := 0.0
	for _, k := range keys {
		var parts []string
		for _, v := range sortedKeys(first[k]) {
			parts = append(parts, fmt.Sprintf("%s %g", v, first[k][v]))
			total += first[k][v]
		}
		ev = append(ev, fmt.Sprintf("%s: %s", k, strings.Join(parts, ", ")))
	}
	suspects := listsWithoutWatch(first)
	if len(suspects) > 0 {
		// A list in flight is normal for a moment: look again.
		select {
		case <-time.After(stuckListDelay):
		case <-d.ctx.Done():
		}
		again, err := d.scrape()
		if err != nil {
			return warn(name, "yurthub's metrics could not be read a second time to confirm a stuck list", "run doctor again", append(ev, err.Error())...)
		}
		still := listsWithoutWatch(inFlight(again))
		var stuck []string
		for k := range suspects {
			if still[k] {
				stuck = append(stuck, k.String())
			}
		}
		sort.Strings(stuck)
		if len(stuck) > 0 {
			return warn(name, fmt.Sprintf("stuck: %s %s in flight for over %s without its watch",
				strings.Join(stuck, ", "), plural(len(stuck), "has a list", "have lists"), stuckListDelay),
				"a list yurthub does not answer keeps its client from starting its watch; for endpoints or endpointslices "+
					"(kube-proxy, coredns) yurthub's servicetopology filter waits for the node's NodePool: check the node's label "+
					"apps.openyurt.io/nodepool and that the NodePool exists ('kubectl get nodepools'), then look at yurthub's log", ev...)
		}
	}
	if total == 0 {
		return ok(name, "no request in flight through yurthub", ev...)
	}
	return ok(name, fmt.Sprintf("%g requests in flight through yurthub, none stuck", total), ev...)
}

func (d *doctor) checkTraffic() Finding {
	const name = CheckTraffic
	mfs, err := d.metrics()
	if err != nil {
		return skip(name, "yurthub's metrics cannot be read", err.Error())
	}
	byClient := map[string]float64{}
	byKind := map[string]float64{}
	total := 0.0
	for _, s := range mfs.samples(metricTraffic) {
		c := component(s.labels["client"])
		byClient[c] += s.value
		r := s.labels["resource"]
		if sr := s.labels["subresources"]; sr != "" {
			r += "/" + sr
		}
		byKind[c+" "+s.labels["verb"]+" "+r] += s.value
		total += s.value
	}
	if total == 0 {
		return ok(name, "no traffic through yurthub recorded yet")
	}
	top := func(m map[string]float64, n int) []string {
		keys := sortedKeys(m)
		sort.SliceStable(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
		if len(keys) > n {
			keys = keys[:n]
		}
		var out []string
		for _, k := range keys {
			out = append(out, fmt.Sprintf("%s %s (%.0f%%)", k, bytesString(m[k]), 100*m[k]/total))
		}
		return out
	}
	clients := top(byClient, 5)
	ev := append([]string{"by client: " + strings.Join(clients, ", ")}, "by request: "+strings.Join(top(byKind, 5), ", "))
	return ok(name, fmt.Sprintf("%s returned through yurthub; top talker %s", bytesString(total), clients[0]), ev...)
}

func bytesString(b float64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%.0f B", b)
	}
	div, exp := float64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", b/div, "KMGTPE"[exp])
}
