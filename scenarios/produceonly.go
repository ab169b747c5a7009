package scenarios

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// A produce-only scenario has consumers: 0. It measures what producers
// see, as kafka-producer-perf-test or RabbitMQ PerfTest's producer-only
// mode do: publish latency, sent, acked, failed and their rates. Nothing is
// received, so every figure about deliveries is undefined: a threshold
// that names one, a subscription, a pipeline (judged on its output), a
// find-max search (judged on deliveries) and a chaos action that acts on
// consumers are problems.

// deliveryCounts are the counts (and, with .ratio, the ratios) that only
// deliveries define.
var deliveryCounts = []string{
	"received", "duplicates", "lost", "loss", "unconfirmed_delivered", "reordered",
	"redelivered", "dead_lettered", "aborted_reads", "aborted_visible", "foreign", "malformed",
}

// deliveryLatencies are the latency kinds timed at a delivery.
var deliveryLatencies = []string{"e2e", "service", "pipeline"}

// DeliveryMetric reports whether metric (a threshold metric name, see
// LookupMetric) is measured on deliveries, and so undefined in a run
// without consumers: received, duplicates, lost, reordered and the other
// delivery counts and their ratios, the e2e, service and pipeline
// latencies, and achieved_rate.
func DeliveryMetric(metric string) bool {
	if kind, stat, ok := strings.Cut(metric, "."); ok && stat != "ratio" {
		return contains(deliveryLatencies, kind)
	}
	base, _ := strings.CutSuffix(metric, ".ratio")
	return contains(deliveryCounts, base) || base == "achieved_rate"
}

// measuresInstead says, in problems, what a produce-only run measures.
const measuresInstead = "a produce-only run measures publish latency, sent, acked, failed and their rates"

// validateProduceOnly checks a scenario with consumers: 0 (see above). It
// names, in every problem, the line that says consumers: 0.
func (l *Loader) validateProduceOnly(d *Decoder, root *yaml.Node, s *Scenario) {
	cn := Child(root, "consumers")
	if cn == nil || s.Consumers != 0 {
		return
	}
	where := fmt.Sprintf(" (consumers: 0 at line %d)", cn.Line)
	if s.Pipeline != nil {
		d.Errorf(cn, "consumers", "a pipeline is judged on its output, which spate's consumers read; give it at least 1 consumer")
	}
	if n := Child(root, "subscriptions"); n != nil && s.Subscriptions > 1 {
		d.Errorf(n, "subscriptions", "%d subscriptions need consumers to form them%s", s.Subscriptions, where)
	}
	if tn := Child(root, "thresholds"); tn != nil && tn.Kind == yaml.SequenceNode {
		for i, t := range s.Thresholds {
			for _, m := range t.Metrics() {
				if DeliveryMetric(m) && i < len(tn.Content) {
					d.Errorf(tn.Content[i], fmt.Sprintf("thresholds[%d]", i), "%s is measured on deliveries, and nothing is received%s; %s", m, where, measuresInstead)
					break
				}
			}
		}
	}
	if tn := Child(root, "traffic"); tn != nil && tn.Kind == yaml.SequenceNode {
		for i := range s.Traffic {
			if s.Traffic[i].FindMax != nil && i < len(tn.Content) {
				d.Errorf(Child(resolve(tn.Content[i]), "find-max"), fmt.Sprintf("traffic[%d].find-max", i),
					"a find-max search judges each step by what is received and by the backlog, so it needs consumers; "+
						"for a producer's capacity use a max phase with consumers: 0%s", where)
			}
		}
	}
	if chn := Child(root, "chaos"); chn != nil && chn.Kind == yaml.SequenceNode {
		for i, a := range s.Chaos {
			if i >= len(chn.Content) {
				break
			}
			entry := resolve(chn.Content[i])
			switch {
			case l.targets[a.Action] == OnConsumers:
				d.Errorf(at(entry, "action"), fmt.Sprintf("chaos[%d].action", i), "%s acts on consumers, and the scenario has none%s", a.Action, where)
			case a.Target == "consumers":
				d.Errorf(at(entry, "target"), fmt.Sprintf("chaos[%d].target", i), "the scenario has no consumers to aim %s at%s; use target: producers", a.Action, where)
			}
		}
	}
}
