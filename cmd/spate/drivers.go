package main

import (
	"github.com/spate-dev/spate/drivers"
	"github.com/spate-dev/spate/drivers/memory"
	"github.com/spate-dev/spate/scenarios"
)

// kinds are the drivers built into this binary; main is the only place that
// imports concrete drivers.
func kinds() []drivers.Kind {
	return []drivers.Kind{memory.Kind}
}

// loader knows every built-in driver.
func loader() *scenarios.Loader {
	l := &scenarios.Loader{}
	for _, k := range kinds() {
		l.Driver(k.Name, k.Options)
	}
	return l
}
