import {
  Injectable,
  UnsupportedMediaTypeException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';

/** The media type of a `Content-Type` header value (lower case, parameters dropped), or ''. */
export function mediaType(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return (value ?? '').split(';')[0].trim().toLowerCase();
}

/**
 * For JSON routes: answers 415 for a request whose body is anything but `application/json` (a charset
 * parameter is fine). HTML forms (`application/x-www-form-urlencoded`, `multipart/form-data`, `text/plain`)
 * are sent cross-site without a CORS preflight, so a route that accepted them could be driven by any web
 * page; a JSON body needs the preflight.
 * @example
 *   @Post(':id/cards')
 *   @UseGuards(JsonBodyGuard)
 *   addCard(@Body() body: CreateCardBody) {}
 * @throws UnsupportedMediaTypeException (415) for any other or a missing `Content-Type`
 */
@Injectable()
export class JsonBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context
      .switchToHttp()
      .getRequest<{ headers: Record<string, string | string[] | undefined> }>();
    if (mediaType(request.headers['content-type']) !== 'application/json') {
      throw new UnsupportedMediaTypeException('Send the body as JSON, with Content-Type: application/json');
    }
    return true;
  }
}
