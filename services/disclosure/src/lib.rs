//! tryggdel-disclosure
