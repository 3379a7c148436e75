package cluster

// Description is this node's view of the cluster, as served by
// GET /api/v1/cluster.
type Description struct {
	// Self is this node.
	Self Member `json:"self"`
	// Members lists every known member, this node included, by name.
	Members []Member `json:"members"`
	// Registry maps each processor to its instances on live nodes.
	Registry Registry `json:"registry"`
	// Interests maps each live node to the keys it declared with
	// SetInterests.
	Interests map[string][]string `json:"interests"`
}

// Describe returns this node's view of the cluster. It is a copy the caller
// may modify and marshals to JSON.
func (c *Cluster) Describe() Description {
	s := c.snapshot()
	interests := make(map[string][]string, len(s.byNode))
	for n, keys := range s.byNode {
		interests[n] = append([]string(nil), keys...)
	}
	return Description{
		Self:      c.Self(),
		Members:   c.Members(),
		Registry:  s.registry.Clone(),
		Interests: interests,
	}
}
