package engine

import "github.com/spate-dev/spate/scenarios"

// owedSubscriptions is how many subscriptions the tracker owes every acked
// message to: the scenario's, or none in a produce-only run (consumers: 0),
// where nothing is received and so nothing can be lost.
func owedSubscriptions(sc *scenarios.Scenario) int {
	if sc.Consumers == 0 {
		return 0
	}
	return sc.Subscriptions
}
