package main

import (
	"github.com/spate-dev/spate/chaos"
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/eventbridge"
	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/drivers/memory"
	"github.com/spate-dev/spate/drivers/rabbitmq"
	"github.com/spate-dev/spate/scenarios"
)

// kinds are the drivers built into this binary; main is the only place that
// imports concrete drivers.
func kinds() []drivers.Kind {
	return []drivers.Kind{kafka.Kind, memory.Kind, rabbitmq.Kind, eventbridge.Kind}
}

// loader knows every built-in driver and chaos action.
func loader() *scenarios.Loader {
	l := &scenarios.Loader{}
	for _, k := range kinds() {
		l.Driver(k.Name, k.Options)
	}
	chaos.Register(l)
	return l
}
