package config

// Error is an invalid configuration input, worded for the person who typed
// it: one line naming the key, the problem and where the value came from,
// so that main can print it as is and exit 2.
type Error struct {
	// Key is the configuration key, e.g. "log.format"; empty when the
	// problem is the config file as a whole (unreadable, not YAML).
	Key     string
	Problem string

	// At most one of these is set: the source of the bad value. A value
	// left at its default has none.
	File string // the config file
	Env  string // the environment variable, e.g. CERTLENS_LOG_FORMAT
	Flag string // the command line flag, without dashes
}

func (e *Error) Error() string {
	if e.Key == "" {
		return "config: " + e.File + ": " + e.Problem
	}
	s := "config: " + e.Key + ": " + e.Problem
	switch {
	case e.File != "":
		s += " (in " + e.File + ")"
	case e.Env != "":
		s += " (from " + e.Env + ")"
	case e.Flag != "":
		s += " (from --" + e.Flag + ")"
	}
	return s
}
