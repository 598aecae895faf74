"""cnn-arch's command-line tool; the library is `archspec`."""
