//! tryggdel-test-support
