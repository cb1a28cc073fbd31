import {
  AndFilter,
  EqualityFilter,
  ExtensibleFilter,
  Filter,
  FilterParser,
  GreaterThanEqualsFilter,
  OrFilter,
} from 'ldapts';

// Search filters are built from ldapts' filter objects, never by pasting user input into filter
// text: a value travels as the assertion value of its BER element, so `*`, `)(uid=*` or NUL in
// a login are just characters to compare (RFC 4515 §3 escaping is then the encoder's job).

/** Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: membership through nested groups. */
export const IN_CHAIN_RULE = '1.2.840.113556.1.4.1941';

/** RFC 4515 §3 escaping of a value for filter text (logs, configuration examples). */
export function escapeFilterValue(value: string | Buffer): string {
  return Filter.escape(value);
}

/** An administrator's filter from the configuration; throws naming it when it does not parse. */
export function parseFilter(text: string, setting: string): Filter {
  try {
    return FilterParser.parseString(text);
  } catch (err) {
    throw new Error(`${setting}: not an LDAP filter (${(err as Error).message}): ${text}`, {
      cause: err,
    });
  }
}

const anyOf = (filters: Filter[]): Filter =>
  filters.length === 1 ? filters[0]! : new OrFilter({ filters });

/** `(&<base>(|(attr1=<value>)(attr2=<value>)...))` with the value compared as is. */
export function matchingAny(base: Filter, attributes: string[], value: string): Filter {
  return new AndFilter({
    filters: [base, anyOf(attributes.map((attribute) => new EqualityFilter({ attribute, value })))],
  });
}

/** `(&<base>(|(attr=<v1>)(attr=<v2>)...))` for one attribute and several values. */
export function attributeIn(base: Filter, attribute: string, values: string[]): Filter {
  return new AndFilter({
    filters: [base, anyOf(values.map((value) => new EqualityFilter({ attribute, value })))],
  });
}

/** `(&<base>(<attr>:1.2.840.113556.1.4.1941:=<dn>))`: AD's transitive membership. */
export function inChain(base: Filter, attribute: string, dn: string): Filter {
  return new AndFilter({
    filters: [base, new ExtensibleFilter({ matchType: attribute, rule: IN_CHAIN_RULE, value: dn })],
  });
}

/** `(&<base>(<attr>>=<since>))`: entries modified at or after a GeneralizedTime. */
export function changedSince(base: Filter, attribute: string, since: string): Filter {
  return new AndFilter({
    filters: [base, new GreaterThanEqualsFilter({ attribute, value: since })],
  });
}
