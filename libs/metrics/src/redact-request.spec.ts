import { FILTERED, redactHeaders, redactQuery, splitUrl } from './redact-request';

describe('request redaction', () => {
  it('filters sensitive headers and keeps the rest', () => {
    expect(
      redactHeaders({
        authorization: 'Bearer abc',
        'proxy-authorization': 'Basic x',
        cookie: 'sid=1',
        'x-api-key': 'k',
        'x-auth-token': 't',
        'x-session-id': 's',
        'user-agent': 'curl/8',
        'x-forwarded-for': ['10.0.0.1', '10.0.0.2'],
        host: 'example.com',
        'x-request-id': ['r1', 'r2'],
      }),
    ).toEqual({
      authorization: FILTERED,
      'proxy-authorization': FILTERED,
      cookie: FILTERED,
      'x-api-key': FILTERED,
      'x-auth-token': FILTERED,
      'x-session-id': FILTERED,
      'user-agent': 'curl/8',
      'x-forwarded-for': FILTERED,
      host: 'example.com',
      'x-request-id': 'r1, r2',
    });
  });

  it('filters the values of sensitive query parameters, also when encoded', () => {
    expect(redactQuery('token=abc&page=2&Password=x&api%5Fkey=y&q=boards&access_token')).toBe(
      'token=%5BFiltered%5D&page=2&Password=%5BFiltered%5D&api%5Fkey=%5BFiltered%5D&q=boards&access_token=%5BFiltered%5D',
    );
    expect(redactQuery('')).toBe('');
    expect(redactQuery('%E0%A4%A=1&secret=2')).toBe('%E0%A4%A=1&secret=%5BFiltered%5D');
  });

  it('splits a URL into its path and redacted query, ignoring the fragment', () => {
    expect(splitUrl('/boards/1?token=t&x=1#frag')).toEqual({
      path: '/boards/1',
      query: 'token=%5BFiltered%5D&x=1',
    });
    expect(splitUrl('/health')).toEqual({ path: '/health', query: '' });
    expect(splitUrl(undefined)).toEqual({ path: '/', query: '' });
  });
});
