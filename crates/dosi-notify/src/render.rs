//! From a [`Subscription`] back to the JSON of the API, compacted with a
//! request's context.
