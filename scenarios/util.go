package scenarios

import "strings"

func joinList(items []string) string { return strings.Join(items, ", ") }
