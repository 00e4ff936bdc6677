package config

// DefaultLocalSocket is agent.local_socket when the file leaves it out.
// On Windows the local API is not served yet (a named pipe is to come):
// the default is off.
const DefaultLocalSocket = ""
