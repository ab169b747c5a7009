package kafka

import "github.com/spate-dev/spate/drivers"

// Owned is the number of partitions consumer c owns now.
func Owned(c drivers.Consumer) int {
	kc := c.(*consumer)
	kc.mu.Lock()
	defer kc.mu.Unlock()
	return len(kc.parts)
}

// ProducerOpt is the value of a franz-go option (kgo.MaxBufferedBytes, ...)
// in producer p's client.
func ProducerOpt(p drivers.Producer, opt any) any { return p.(*producer).cl.OptValue(opt) }
