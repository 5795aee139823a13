package main

import (
	"github.com/spf13/cobra"

	"github.com/rekeyhq/rekey/app"
)

// Shell completion of positional arguments: key names and active
// rotations, asked of the daemon (or read from the store) the way the verb
// itself would. Completion never fails loudly: without a daemon or a store
// it offers nothing.

func (c *cli) completeKeys(cmd *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(a) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out struct {
		Keys []app.KeyView `json:"keys"`
	}
	if !c.completeFrom(cmd, "/v1/keys", &out) {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, 0, len(out.Keys))
	for _, k := range out.Keys {
		names = append(names, k.Name+"\t"+k.State)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

func (c *cli) completeRotations(cmd *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(a) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out struct {
		Rotations []rotationOut `json:"rotations"`
	}
	if !c.completeFrom(cmd, activeQuery("", false), &out) {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ids := make([]string, 0, len(out.Rotations))
	for _, r := range out.Rotations {
		ids = append(ids, r.ID+"\t"+r.Key+" "+string(r.Phase))
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
}

func (c *cli) completeFrom(cmd *cobra.Command, path string, out any) bool {
	cl, err := c.connect("complete", false)
	if err != nil {
		return false
	}
	defer cl.Close()
	_, err = cl.get(cmd.Context(), path, out)
	return err == nil
}
