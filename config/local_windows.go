package config

// DefaultLocalSocket is agent.local_socket when the file leaves it out:
// the named pipe the agent serves its local API on (agent/localapi).
const DefaultLocalSocket = `\\.\pipe\mamori`

// checkLocalSocket accepts a local named pipe (checkPipeName).
func checkLocalSocket(s string) error { return checkPipeName(s) }
