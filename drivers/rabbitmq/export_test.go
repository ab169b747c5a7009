package rabbitmq

import "context"

// LeadersByCLI is QueueLeaders the slow way, with rabbitmqctl list_queues
// on node 0 only, for tests to compare the two.
func (c *Cluster) LeadersByCLI(ctx context.Context, queues []string) (map[string]int, error) {
	index := map[string]int{}
	for i, n := range c.nodes {
		index[n.name] = i
	}
	out, err := c.nodes[0].ctl(ctx, "list_queues", "-q", "--no-table-headers", "name", "type", "leader", "pid")
	if err != nil {
		return nil, err
	}
	return parseLeaders(out, index, queues), nil
}
